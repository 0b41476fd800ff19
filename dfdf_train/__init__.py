"""dfdf_train: the 3rd-place DFDC recipe (RECIPE.md) on top of dfaug's public API.

What exists: :mod:`dfdf_train.models` (the three EfficientNet models, B7 and a
B0-sized variant for tests). The commands (``python -m dfdf_train
{preprocess,train,predict,evaluate,demo}``) are not built yet.
"""
