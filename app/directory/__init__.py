"""Directory sign-in: LDAP / Active Directory and OpenID Connect (issue 18)."""
