"""``python -m terraform_external``: same as the ``passgeni-terraform-external`` script."""

import sys

from terraform_external import main

sys.exit(main())
