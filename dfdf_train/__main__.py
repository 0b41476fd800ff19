"""``python -m dfdf_train {preprocess,train,predict,evaluate,demo} ...``"""
from .cli import main

raise SystemExit(main())
