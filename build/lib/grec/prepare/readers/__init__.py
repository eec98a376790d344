"""Source readers: each turns one family of real files into a :class:`grec.prepare.log.RawLog`."""
