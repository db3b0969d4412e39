"""The stack as files: which go in the zip, the zip itself, the form check, the declared variables and the values given."""
