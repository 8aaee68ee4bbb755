"""The decision service: the Faust app, its tables and thin agents, and the pure logic they call."""
