"""The `klg` console script's launcher (part of the keras-learngene distribution).

It is a top-level module so that it runs before `keras_learngene/__init__.py`:
`DEFER_IMPORT` asks the package to defer importing Keras and registering its
serializables until a command needs them, so that `klg --help` and a command's
`--help` answer without starting a backend. Everyone else who imports
`keras_learngene` gets the whole package at once.
"""

DEFER_IMPORT = True


def main():
    """Entry point of the `klg` console script (see `keras_learngene.cli.main`)."""
    from keras_learngene.cli import main as cli_main

    return cli_main()


if __name__ == "__main__":  # `python -m _klg`: the flag must be on the module named _klg
    import _klg

    _klg.main()
