"""Command-line interfaces: parse options, call the packages, print. No logic lives here."""
