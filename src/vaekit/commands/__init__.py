"""One module per command: ``add_arguments(parser)`` and ``run(args) -> exit status``.

Nothing here imports torch at module level.
"""
