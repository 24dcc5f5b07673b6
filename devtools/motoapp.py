"""moto's DynamoDB (and Streams) as a WSGI app, served by gunicorn for the embedded default.

One worker only: moto keeps its state in process memory.
"""

from moto.server import DomainDispatcherApplication, create_backend_app

app = DomainDispatcherApplication(create_backend_app)
