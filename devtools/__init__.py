"""Development tooling: the launcher and the embedded services of `make run`, `make test` and
`make bench`. Not shipped in the production image; production code never imports it."""
