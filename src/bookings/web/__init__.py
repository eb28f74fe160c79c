"""The live web console: a static page that drives the API and shows the event stream."""
