"""A small GraphQL API (graphql-core, the Python port of GraphQL.js) for the `graphql` backend's tests.

Serves POST /graphql on 127.0.0.1 and prints its port. With --token, requests need `Authorization: Bearer <token>`.
"""
import argparse
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from graphql import build_schema, graphql_sync

SDL = '''
"A book in the library."
type Book { id: ID!, title: String!, genre: Genre!, year: Int, author: Author }
type Author { name: String!, books: [Book!]! }
enum Genre { FICTION SCIENCE }
input BookInput { title: String!, genre: Genre!, year: Int }
type Query {
  "One book by id."
  book(id: ID!): Book
  "Books, optionally of one genre."
  books(genre: Genre, limit: Int = 10): [Book!]!
  hello(name: String): String!
}
type Mutation {
  "Adds a book."
  addBook(input: BookInput!): Book!
}
'''

LOCK = threading.Lock()
AUTHOR = {"name": "Ada"}
BOOKS = [
    {"id": "1", "title": "Dune", "genre": "FICTION", "year": 1965, "author": AUTHOR},
    {"id": "2", "title": "Cosmos", "genre": "SCIENCE", "year": 1980, "author": AUTHOR},
]
AUTHOR["books"] = BOOKS


class Root:
    @staticmethod
    def book(info, id):
        for b in BOOKS:
            if b["id"] == id:
                return b
        raise ValueError("no book with id " + id)

    @staticmethod
    def books(info, genre=None, limit=10):
        return [b for b in BOOKS if genre is None or b["genre"] == genre][:limit]

    @staticmethod
    def hello(info, name=None):
        return "hello " + (name or "world")

    @staticmethod
    def addBook(info, input):
        with LOCK:
            book = dict(input, id=str(len(BOOKS) + 1), author=AUTHOR)
            book.setdefault("year", None)
            BOOKS.append(book)
            return book


SCHEMA = build_schema(SDL)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    token = None

    def log_message(self, *args):
        pass

    def send(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path != "/graphql":
            return self.send(404, {"error": "not found"})
        if self.token and self.headers.get("Authorization") != "Bearer " + self.token:
            return self.send(401, {"errors": [{"message": "unauthorized"}]})
        try:
            request = json.loads(raw)
        except ValueError:
            return self.send(400, {"errors": [{"message": "body is not JSON"}]})
        result = graphql_sync(SCHEMA, request.get("query", ""), root_value=Root,
                              variable_values=request.get("variables"), operation_name=request.get("operationName"))
        body = {"data": result.data}
        if result.errors:
            body["errors"] = [e.formatted for e in result.errors]
        self.send(200, body)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--token")
    p.add_argument("--port", type=int, default=0)
    args = p.parse_args()
    Handler.token = args.token
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
