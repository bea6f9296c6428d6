"""The Leadbot application: configuration, Bolt app factory, store, server, CLI, console."""
