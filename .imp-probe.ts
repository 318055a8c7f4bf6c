import './client/dunning';
import './db/tenants';
import './client/temporal';
