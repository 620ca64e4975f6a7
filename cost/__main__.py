"""`python -m cost`: print a stack's monthly estimate as a table, or as JSON; or compare two.

    python -m cost --stack dev              # table
    python -m cost --stack prod --json      # JSON
    python -m cost --stack prod --llm-model openai:gpt-4.1-mini   # the LLM spend with a model
    python -m cost --diff base.json head.json   # Markdown: base, head and the delta per line
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from cost.report import delta_markdown, table
from cost.stack_cost import stack_cost


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m cost", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stack", action="append", choices=["local", "dev", "prod"],
                        help="repeat for several; default: dev and prod")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--llm-model", metavar="PROVIDER:MODEL",
                        help="price the LLM spend with this model instead of the stack's "
                             "first provider's, e.g. openai:gpt-4.1-mini")
    parser.add_argument("--diff", nargs=2, type=Path, metavar=("BASE", "HEAD"),
                        help="two --json outputs of the same stack: a Markdown delta")
    args = parser.parse_args()
    if args.diff:
        base, head = (json.loads(path.read_text()) for path in args.diff)
        print(delta_markdown(base, head))  # noqa: T201 - the command's output
        return
    estimates = [stack_cost(stack, llm_model=args.llm_model)
                 for stack in args.stack or ["dev", "prod"]]
    if args.json:
        print(json.dumps(estimates[0] if len(estimates) == 1 else estimates,  # noqa: T201
                         indent=2))
    else:
        print("\n\n".join(table(e) for e in estimates))  # noqa: T201


if __name__ == "__main__":
    main()
