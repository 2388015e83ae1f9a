"""The lark grammar engine: terminal DFAs, contextual-lexer products, the LALR parser model and its vocabulary walk."""
