"""Automata engines: Python regex -> engine regex -> byte DFA -> token DFA, and the hooks that apply them."""
