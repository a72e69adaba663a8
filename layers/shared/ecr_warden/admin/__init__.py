"""The admin (remediation) function: release, quarantine, exempt, rescan and enforce on request, each recorded with
who asked, when and why. Entry: `ecr_warden.admin.entry.process(payload, settings)`."""
