"""IR helpers below the dialects: `fastir`, the one module that builds and walks xDSL IR
through xDSL's private fields (for speed; docs/ir.md "Speed")."""
