"""JSON Schema engines: schema -> canonical-JSON regex (with its node tree), and schema -> lark grammar."""
