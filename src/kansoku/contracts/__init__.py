"""The calls between kansoku's services, written once: typed clients (`clients`), who a
call is made for and what it can end in (`calls`), and the data a caller reads
(`schemas`). The gateway, orders and the worker import these instead of each writing
its own URLs, JSON and error handling."""
