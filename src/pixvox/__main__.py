"""``python -m pixvox ...`` is the ``pixvox`` command (also under ``torchrun -m pixvox ...``)."""

from pixvox.cli import console_main

if __name__ == "__main__":
    console_main()
