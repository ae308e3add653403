"""HTTP/2 client connections and pools on trio, with our own sans-IO protocol."""

from providers.h2pool.connection import ClientConnection as ClientConnection
from providers.h2pool.connection import Response as Response
from providers.h2pool.pool import H2Pool as H2Pool
from providers.h2pool.pool import Origin as Origin
from providers.h2pool.pool import PoolConfig as PoolConfig
from providers.h2pool.pool import client_ssl_context as client_ssl_context
from providers.h2pool.pool import open_pool as open_pool
from providers.h2pool.protocol import Header as Header
