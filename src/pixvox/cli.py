"""The ``pixvox`` command (installed with the package; also ``python -m pixvox``).

    pixvox pretrain [CONFIG] [key=value ...] [--resume auto|PATH|none|force] [--prepare-data]
    pixvox finetune [CONFIG] [key=value ...] [--resume ...] [--prepare-data]
    pixvox prep DATASET [args ...]          data preparation (pixvox.prep.cli)
    pixvox config CONFIG [key=value ...]    the resolved config, with where each value came from
    pixvox selftest [args ...]              checks of this installation on this machine (pixvox.selftest)

User errors (a config, a missing or malformed file, a checkpoint that does not fit: every
:class:`pixvox.errors.UserError`) print one message and exit with status 2; ``--debug`` (anywhere
on the line) or ``PIXVOX_DEBUG=1`` shows their traceback too. Other exceptions are crashes and
keep their traceback. Parsing, config loading and ``--help`` do not import torch.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

from pixvox.errors import EXIT_USER_ERROR, UserError

__all__ = ["main", "console_main", "VERBS"]

WORKER_TRACEBACK = "Original Traceback (most recent call last):"


def _debug_requested(args: list[str]) -> bool:
    return "--debug" in args or os.environ.get("PIXVOX_DEBUG", "").lower() in ("1", "true", "yes")


def user_error_message(err: BaseException) -> str:
    """The message of a user error; one raised in a DataLoader worker comes back wrapped in the
    worker's traceback text, of which only the last line (``Type: message``) is the message."""
    text = str(err)
    if WORKER_TRACEBACK in text:
        last = text.rstrip().splitlines()[-1]  # "pixvox.io.fusions.FusionFormatError: message"
        text = re.sub(rf"^(?:[\w.]+\.)?{re.escape(type(err).__name__)}: ", "", last)
    return text


def run_verb(verb: str, fn: Callable[[list[str]], int | None], args: list[str], debug: bool) -> int:
    """Call ``fn(args)``; a :class:`UserError` becomes one line on stderr and status 2."""
    try:
        code = fn(args)
    except UserError as err:
        if debug:
            traceback.print_exc()
        hint = "" if debug else "  (--debug or PIXVOX_DEBUG=1 shows the traceback)"
        print(f"pixvox {verb}: error: {user_error_message(err)}{hint}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print(f"pixvox {verb}: interrupted", file=sys.stderr)
        return 130
    return int(code or 0)


# ---------------------------------------------------------------------- verbs
def _job(name: str) -> Callable[[list[str]], int]:
    def run(args: list[str]) -> int:
        from pixvox.engine.launch import run_job

        run_job(name, args)
        return 0

    return run


def _config(args: list[str]) -> int:
    from pixvox.config.explain import explain_config
    from pixvox.config.loader import ConfigError, load_config_with_origins
    from pixvox.engine.job_args import split_config_and_overrides
    from pixvox.engine.launch import JOBS

    p = argparse.ArgumentParser(
        prog="pixvox config",
        description="Print the resolved config as YAML, each value with where it came from: default, "
        "file, _base_ <file> or command line. The output loads back as a config.",
    )
    p.add_argument("config", nargs="?", default=JOBS["pretrain"].default_config, help="YAML config")
    p.add_argument("overrides", nargs="*", help="config overrides key.sub=value")
    p.add_argument(
        "--job",
        choices=sorted(JOBS),
        help="the schema to read it with (default: from the file's folder, configs/pretrain or "
        "configs/finetune, else whichever schema accepts it)",
    )
    p.add_argument("--debug", action="store_true", help="show the traceback of errors")
    a = split_config_and_overrides(p.parse_intermixed_args(args), JOBS["pretrain"].default_config)
    jobs = [a.job] if a.job else [j for j in JOBS if j in Path(a.config).resolve().parent.parts]
    jobs = jobs or list(JOBS)
    errors = []
    for job in jobs:
        try:
            cfg, origins = load_config_with_origins(JOBS[job].config_class, a.config, a.overrides)
        except ConfigError as err:
            errors.append(f"as a {job} config: {err}")
            continue
        print(f"# {a.config} read as a {job} config{' with ' + ' '.join(a.overrides) if a.overrides else ''}")
        print(explain_config(cfg, origins, a.config), end="")
        return 0
    raise ConfigError("; ".join(errors))


def _prep(args: list[str]) -> int:
    from pixvox.prep.cli import main as prep_main

    return int(prep_main(args) or 0)


def _selftest(args: list[str]) -> int:
    try:
        selftest = importlib.import_module("pixvox.selftest")
    except ModuleNotFoundError as err:
        if err.name != "pixvox.selftest":
            raise
        raise UserError(
            "the selftest is not part of this pixvox version (no module pixvox.selftest); update the "
            "checkout and rerun tools/setup_env.sh"
        ) from None
    return int(selftest.main(args) or 0)


VERBS: dict[str, tuple[Callable[[list[str]], int], str]] = {
    "pretrain": (_job("pretrain"), "pretrain a student (PPKT / PointContrast); default: the Quickstart"),
    "finetune": (_job("finetune"), "fine-tune for 3D semantic segmentation"),
    "prep": (_prep, "prepare a dataset: pixvox prep DATASET --help"),
    "config": (_config, "print the resolved config with where each value came from"),
    "selftest": (_selftest, "check this installation on this machine (kernels, sparse conv, a short run)"),
}


def _parser() -> argparse.ArgumentParser:
    from pixvox import __version__

    verbs = "\n".join(f"  {name:<10}{text}" for name, (_, text) in VERBS.items())
    p = argparse.ArgumentParser(
        prog="pixvox",
        description="Pretrain sparse-voxel 3D networks with knowledge from 2D networks; fine-tune them.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=f"verbs:\n{verbs}\n\n`pixvox VERB --help` for each. User errors exit with status 2 "
        "and one message; --debug or PIXVOX_DEBUG=1 adds the traceback.",
    )
    p.add_argument("--version", action="version", version=f"pixvox {__version__}")
    p.add_argument("--debug", action="store_true", help="show the traceback of user errors too")
    p.add_argument("verb", choices=list(VERBS), metavar="VERB", help=", ".join(VERBS))
    p.add_argument("args", nargs=argparse.REMAINDER, help="the verb's arguments")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``pixvox`` with ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    ns = _parser().parse_args(argv)
    debug = ns.debug or _debug_requested(ns.args)
    args = [a for a in ns.args if a != "--debug"]
    fn, _ = VERBS[ns.verb]
    return run_verb(ns.verb, fn, args, debug)


def console_main() -> None:
    """Entry point of the installed ``pixvox`` script."""
    sys.exit(main())
