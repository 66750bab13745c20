"""One module per `camsweep` subcommand. Each defines ``register(subparsers)``, which adds its parser and
sets ``func`` (called with the parsed args, returns the exit code). Modules only parse and call the core."""

# The order here is the order of `camsweep --help`.
COMMANDS = ("demo", "scan", "identify", "lab", "tui", "report", "diff", "plan", "export", "push", "oui",
            "fingerprints")
