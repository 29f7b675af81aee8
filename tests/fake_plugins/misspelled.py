from vcdext import hookimpl


@hookimpl
def vcdext_registr(registrar):  # a typo: must be reported, not ignored
    pass
