"""dfdf_train: the 3rd-place DFDC recipe (RECIPE.md) on top of dfaug's public API.

Its commands (``python -m dfdf_train {preprocess,train,predict,evaluate,demo}``)
are not built yet; until they are, this package holds nothing.
"""
