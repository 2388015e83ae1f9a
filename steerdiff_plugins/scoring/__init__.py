"""Scorers the guidance plugin uses: the classifier registry and its built-in classifiers."""
