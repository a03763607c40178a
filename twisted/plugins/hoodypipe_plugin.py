"""The twistd dropin: names the tap module as a string so scanning imports nothing."""

from twisted.application.service import ServiceMaker

hoodypipe = ServiceMaker(
    "hoodypipe",
    "hoodypipe.tap",
    "A streaming HTTP pipe relay with live spectators.",
    "hoodypipe",
)
