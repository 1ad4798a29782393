"""The lab console (`sof console`): the AWS console's pages for this lab, served on loopback.

It is a client of the AWS APIs like every other command - the same Target, the same
client-side quota - so it draws the same pages against the emulator and, read-only,
against an AWS account; plus the lab's own evidence from runs/. The browser talks only
to this server; the server calls AWS. See docs/console.md.
"""
