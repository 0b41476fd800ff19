"""The command line's commands, one module each: its ``--help`` text (the module's
docstring), ``HELP``, ``add_arguments(parser)`` and ``run(args)``. A command module
imports only light things at the top (settings, registries); the work is imported
inside ``run`` (:mod:`dfdf_train.cli`)."""
