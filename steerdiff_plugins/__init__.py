"""Built-in steerdiff plugins, registered through the `steerdiff` entry-point group like any other."""
