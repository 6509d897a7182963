"""One module per venue, plus what they share.

* :mod:`cancelctl.venues.info`: each venue's facts as plain data (imports nothing);
* :mod:`cancelctl.venues.base`: the :class:`~cancelctl.venues.base.VenueClient`
  protocol every client follows, the plumbing the clients share, and
  :func:`~cancelctl.venues.base.open_client`;
* :mod:`cancelctl.venues.gemini`, :mod:`cancelctl.venues.pacifica`: each
  venue's paths, body shapes and error table.

Imports nothing, so reading a venue's facts loads no client; the client
modules are imported on first use, so the panic path loads only the venue
it needs.
"""
