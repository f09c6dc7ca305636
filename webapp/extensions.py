"""Extension objects, created unbound and initialised in `create_app`."""

from flask_babel import Babel
from flask_bootstrap import Bootstrap5
from flask_cors import CORS
from flask_jwt_extended import JWTManager
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_mail import Mail
from flask_migrate import Migrate
from flask_smorest.spec.plugins import integerconverter2paramschema
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect

from webapp.core.routing import AsciiIntegerConverter
from webapp.db import Base, render_migration_item
from webapp.errors import Api

db = SQLAlchemy(model_class=Base)
migrate = Migrate(compare_type=True, render_as_batch=True, render_item=render_migration_item)
login_manager = LoginManager()
csrf = CSRFProtect()
api = Api()
api.register_converter(AsciiIntegerConverter, integerconverter2paramschema)
jwt = JWTManager()
limiter = Limiter(key_func=get_remote_address)
babel = Babel()
mail = Mail()
bootstrap = Bootstrap5()
cors = CORS()
