"""
The HTTP face: Klein routes, pipe names and query parameters, the headers a
receiver gets, the pages, and how every refusal is worded.
"""
