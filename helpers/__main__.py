"""Command line: ``python -m helpers <command> …``.

``profile``  measure any training command (``python -m helpers profile [options] -- cmd …``);
             see :mod:`helpers.collect.profile`.
``estimate`` predict a training run's time and energy before running it, from a short dry run on
             this machine; see :mod:`helpers.collect.dryrun`.

Both are installed as console scripts too (``helpers-profile``, ``helpers-estimate``).
"""

from __future__ import annotations

import sys

COMMANDS = {
    "profile": "measure a training command and write a run folder in the raw format",
    "estimate": "predict a run's time and energy from a short dry run on this machine",
}


def profile_main(argv: list[str] | None = None) -> int:
    """Entry point of ``helpers-profile``; returns the profiled command's exit code."""
    from helpers.collect import profile

    return profile.main(sys.argv[1:] if argv is None else argv)


def estimate_main(argv: list[str] | None = None) -> int:
    """Entry point of ``helpers-estimate``."""
    from helpers.collect import dryrun

    return dryrun.main(sys.argv[1:] if argv is None else argv)


def main(argv: list[str] | None = None) -> int:
    """Dispatch ``python -m helpers <command> …``."""
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in {"-h", "--help"} or args[0] not in COMMANDS:
        width = max(map(len, COMMANDS))
        lines = [f"  {name:<{width}}  {text}" for name, text in COMMANDS.items()]
        print("usage: python -m helpers <command> [options]\n\ncommands:\n" + "\n".join(lines))
        return 0 if args and args[0] in {"-h", "--help"} else 2
    entry = {"profile": profile_main, "estimate": estimate_main}[args[0]]
    return entry(args[1:])


if __name__ == "__main__":
    sys.exit(main())
