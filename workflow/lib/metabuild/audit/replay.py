HELP="stub"
def add_arguments(p):
    return p
def run(a):
    return 0
