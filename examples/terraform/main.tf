# The billing database's password: generated on the machine running Terraform to
# the PCI DSS preset, certified by your PassGeni authority and stored in Vault KV v2
# with the certificate beside it. The Terraform state holds only references
# (certificate id and URL, expiry, the Vault version): never the password or its seed.
#
# Set up once (README.md in this folder): `passgeni terraform install-provider`, then
# VAULT_ADDR/VAULT_TOKEN and PASSGENI_URL/PASSGENI_API_KEY in the environment.

terraform {
  required_version = ">= 1.11" # ephemeral resources and write-only attributes
  required_providers {
    passgeni = {
      source = "passgeni/passgeni"
    }
  }
}

# Every attribute is optional: the environment the passgeni CLI reads fills them in.
# The API key comes only from PASSGENI_API_KEY (or the config file), never from here.
provider "passgeni" {}

variable "vault_path" {
  description = "KV v2 location as MOUNT/PATH"
  type        = string
  default     = "secret/prod/billing-db"
}

variable "keeper" {
  description = "Rotation epoch: change it (a date, a ticket) to rotate the password"
  type        = string
  default     = "2026-11-22"
}

# plan: reads Vault and checks the certificate, writes nothing.
# apply: generates, certifies and stores (a new keeper: a new version, the old
# certificate revoked). A value changed by hand is planned as a replacement.
resource "passgeni_credential" "billing_db" {
  destination = "vault://${var.vault_path}#password"
  preset      = "pci-dss"
  keeper      = var.keeper
  exclude     = "@/:?#%&\"'\\" # characters the connection string cannot take
  on_destroy  = "revoke"       # destroy revokes the certificate; the value stays in Vault

  lifecycle {
    # On rotation, store the new credential before the old resource is destroyed:
    # the stored value stays certified throughout.
    create_before_destroy = true
  }
}

# The certificate, verified against the authority (signature, record, revocation, expiry).
data "passgeni_certificate" "billing_db" {
  cert_id = passgeni_credential.billing_db.cert_id
  require = "pci-dss"
}

# The stored password for a write-only attribute of the resource that needs it,
# opened only once the credential above is applied, and never written to the state
# or a plan file. For example, with a provider that has write-only attributes:
#
#   resource "aws_db_instance" "billing" {
#     password_wo         = ephemeral.passgeni_credential.billing_db.password
#     password_wo_version = 1
#     ...
#   }
ephemeral "passgeni_credential" "billing_db" {
  destination = passgeni_credential.billing_db.destination
  preset      = "pci-dss"
  cert_id     = passgeni_credential.billing_db.cert_id
}

output "certificate_url" {
  description = "The public certificate page: give this to the auditor"
  value       = passgeni_credential.billing_db.cert_url
}

output "certificate_status" {
  value = data.passgeni_certificate.billing_db.status
}

output "standards_met" {
  value = passgeni_credential.billing_db.standards_met
}

output "vault_version" {
  value = passgeni_credential.billing_db.store_version
}
