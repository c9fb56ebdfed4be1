"""The engine's version, stamped on every report so a figure can be traced to the code that made it."""

ENGINE_VERSION = "0.1.0"
