"""The vCloud wire vocabulary: everything vcdext knows about vCD's formats, in one place.

Media types and link rels, API versions, the XML reading and writing of each document kind
vcdext touches, the JSON request/reply message of the AMQP protocol (both directions) and the
localization bundle format. Pure: no I/O, no threads. The runtime, the vCD client and the
local cell all use it; each document kind is written once and read once here.
"""
