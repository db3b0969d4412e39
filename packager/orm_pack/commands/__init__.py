"""The verbs of orm-pack: arguments, prompts and printing over the layers below (cli.py registers them)."""
