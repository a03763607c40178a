"""
The byte path: a send's body from the sender's socket to the receivers'
sockets, with Twisted producers and consumers for backpressure.

This is the hottest code of the relay: nothing here logs, allocates or does
work per read that it can avoid, and spectators never reach in here.
"""
