"""The python3 runtime's hello world: `qinling run examples/python3 --input '{"name": "you"}'`.

A JSON object input arrives as keyword arguments; what is printed is the execution's log,
what is returned its result.
"""


def main(name="World", **kwargs):
    print("greeting %s" % name)
    return "Hello, %s" % name
