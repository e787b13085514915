"""A plugin that cannot be imported: overnight must report it and carry on."""

raise ImportError("this plugin needs a library that is not installed (on purpose, for the tests)")
