"""`orm-pack local`: the docker/ runtime (tracking, auth proxy, serving) run natively on this machine."""
