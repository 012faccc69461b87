"""``python -m vidlib {train,test,flops,benchmark,recipes} ...``: the command-line interface (see
vidlib.engine.cli; bad input exits with status 2, Ctrl-C during ``train`` with 130)."""


def main(argv=None) -> int:
    from .engine.cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    raise SystemExit(main())
