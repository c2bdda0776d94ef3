"""Reading force feeds: one module per way in (files, HTTP, SQL) over `base`."""
