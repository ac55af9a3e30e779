# What the firmware tests expect of a call that must fail (the VM's tests have no pytest).


def raises(kind, fn, *args, **kwargs):
    """The `kind` exception fn(*args, **kwargs) raises; AssertionError if it raises none."""
    try:
        fn(*args, **kwargs)
    except kind as e:
        return e
    raise AssertionError("no %s" % kind.__name__)
