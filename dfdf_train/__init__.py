"""dfdf_train: the 3rd-place DFDC recipe (docs/recipe.md) on top of dfaug's public API.

Commands: ``python -m dfdf_train {preprocess,train,predict,evaluate,robustness,demo}``
(:mod:`.cli`, one light module each in :mod:`.commands`). :mod:`.recipes` declares the
recipe's models once. Library parts: :mod:`.sources` (data-set layouts),
:mod:`.models` (the three EfficientNet models),
:mod:`.faces` (face detectors), :mod:`.tracking` (IoU tracks, aligned pairs),
:mod:`.inference` (the recipe's video score, log-loss), :mod:`.synth` (DFDC-layout
sets with synthetic fakes, for tests and the demo).
"""
