"""Report builders: charts, templates, regulatory files, the compliance report and the email."""
