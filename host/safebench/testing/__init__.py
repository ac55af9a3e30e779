"""Test support that ships with safebench: the HIL pytest plugin and TLS peers that misbehave on purpose."""
