"""``python -m vidlib {train,test,flops,benchmark} ...``: the command-line interface (see
vidlib.engine.cli)."""


def main(argv=None) -> int:
    from .engine.cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    raise SystemExit(main())
